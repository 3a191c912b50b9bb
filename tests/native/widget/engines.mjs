// Both browser builds of the core side by side in node: the WebAssembly module and its wasm2js
// compilation (gradebook_wasm_asm.js, the widget's fallback without WebAssembly), each behind its
// own copy of the wasm-bindgen glue.
//   node engines.mjs <plugin wasm dir> <case.json: {"compiled": base64, "rows": [{"cells": [...], "flags": [...]}]}>
//   (compiled: the course as the web service sends it, base64 of little-endian doubles)
// Prints JSON: {"wasm": [[final|null, ...], ...], "js": [...], "jsMemory": [bytes before, bytes after],
//               "badInput": {"wasm": message, "js": message}} (the error for a malformed course).
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';

const [dir, casefile] = process.argv.slice(2);
const url = (f) => pathToFileURL(`${dir}/${f}`).href;
const c = JSON.parse(fs.readFileSync(casefile, 'utf8'));
const bytes = Buffer.from(c.compiled, 'base64');
const course = new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));

const wasmGlue = await import(url('gradebook_wasm.js') + '?wasm');
wasmGlue.initSync({ module: fs.readFileSync(`${dir}/gradebook_wasm_bg.wasm`) });

const jsGlue = await import(url('gradebook_wasm.js') + '?js');
const asm = await import(url('gradebook_wasm_asm.js'));
const exports = asm.instantiate(jsGlue.__wbg_get_imports());
jsGlue.__wbg_finalize_init({ exports }, null);
const before = exports.memory.buffer.byteLength;

const run = (glue) => {
  const w = new glue.WhatIf(course);
  return c.rows.map((r) => Array.from(w.recompute(Float64Array.from(r.cells), Uint8Array.from(r.flags)),
    (v) => (Number.isNaN(v) ? null : v)));
};
const bad = (glue) => {
  try {
    new glue.WhatIf(Float64Array.of(1, 2, 3));
    return null;
  } catch (e) {
    return `${e.constructor.name}: ${e.message}`;
  }
};
const out = { wasm: run(wasmGlue), js: run(jsGlue), jsMemory: [before, exports.memory.buffer.byteLength] };
out.badInput = { wasm: bad(wasmGlue), js: bad(jsGlue) };
console.log(JSON.stringify(out));
