/* The top bar's model line: which detector answers (name, number of classes), and for a demo
 * model the API's one-line notice (`demo`, `notice` of GET /v1/model; absent on older servers). */

import { $ } from "./dom.js";

export function showModel(model) {
  const names = model.class_names || [];
  const info = $("#model-info");
  info.textContent = `${model.weights || "model"} · ${names.length} classes`;
  info.title = `${model.architecture || ""} · input ${model.input_size ?? "?"} px · `
    + `${model.pooling || ""} pooling · ${model.dim ?? "?"}-d vectors · ${model.device || ""}`;
  info.hidden = false;
  const notice = $("#model-notice");
  const text = model.demo === true
    ? (model.notice || "This is the bundled demo detector: it only knows generated shapes.")
    : "";
  notice.textContent = text;
  notice.hidden = !text;
}
