from mloop.cli import main

main()
