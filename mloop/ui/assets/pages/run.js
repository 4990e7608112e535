// placeholder until the run page lands
import { h } from "../lib.js";

export async function render(main) {
  main.append(h("p", { class: "muted" }, "This page is coming."));
}
