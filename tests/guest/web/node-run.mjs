// Run checks.js under Node: node node-run.mjs TVM_GUEST_MJS CHECKS_MJS GUEST_WASM USER_WASM
import { readFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";

const [tvmPath, checksPath, guestPath, userPath] = process.argv.slice(2);
const tvm = await import(pathToFileURL(tvmPath).href);
const { runChecks } = await import(pathToFileURL(checksPath).href);
let report;
try {
  const results = await runChecks(tvm, await readFile(guestPath), await readFile(userPath));
  report = { engine: `node ${process.version} (V8 ${process.versions.v8})`, results };
} catch (error) {
  report = { engine: `node ${process.version} (V8 ${process.versions.v8})`, error: String(error) };
}
console.log(JSON.stringify(report));
