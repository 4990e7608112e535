"""Blob storage for artifacts: a narrow protocol, a local default and fsspec for object stores."""

from mloop.store.blob.base import BlobInfo, BlobStore, open_blob_store

__all__ = ["BlobInfo", "BlobStore", "open_blob_store"]
