// A tvm:memory guest in JavaScript, built with componentize-js (npm @bytecodealliance/componentize-js).
//
// Build (from this folder, after `tvm-wasm template javascript .` laid out wit/):
//
//   npx componentize-js guest.js --wit wit --world-name example:guest/guest@0.1.0 -o guest.wasm
//
// An import whose WIT result is an err throws an Error whose `payload` is the
// tvm-error ({ tag: 'stale-handle', val: { regionId, ..., message } }). An export
// returns its ok value, or throws an object with a `payload` for its err.
// Anything else thrown out of an export traps the guest.
import { alloc, createRegion, describeRegion, destroyRegion } from 'tvm:memory/manager@0.1.0';
import { copy, copyRegion, read, write } from 'tvm:memory/bytes@0.1.0';
import { metricsSnapshot } from 'tvm:memory/diagnostics@0.1.0';

/** `value` as JSON text; a tvm-error's u64 fields (`len`, `capacity`) arrive as BigInt, which JSON cannot hold. */
function json(value) {
  return JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? v.toString() : v));
}

class Refused extends Error {
  constructor(payload) {
    super(typeof payload === 'string' ? payload : json(payload));
    this.payload = payload;
  }
}

/** The tvm-error an import threw, or rethrow anything else. */
function tvmError(e) {
  if (e && e.payload !== undefined) return e.payload;
  throw e;
}

export function stash(data) {
  try {
    const size = Math.max(data.length, 1);
    const region = createRegion('blob-arena', size);
    const handle = alloc(region, size);
    write(handle, data);
    return handle;
  } catch (e) {
    throw new Refused(tvmError(e));
  }
}

export function tour(message) {
  const steps = [];
  let region, second;
  try {
    const size = message.length;
    region = createRegion('object-arena', 4096);
    steps.push(`create: region ${region}`);
    const first = alloc(region, size);
    second = alloc(region, size);
    steps.push(`alloc: offsets ${first.offset} and ${second.offset}`);
    write(first, message);
    steps.push(`write: ${size} bytes`);
    const back = read(first, size);
    if (back.length !== size || !back.every((b, i) => b === message[i])) {
      throw new Refused('read: the bytes differ from what was written');
    }
    steps.push(`read: ${size} bytes, equal`);
    copy(first, second, size);
    steps.push(`copy: to offset ${second.offset}`);
    const info = describeRegion(region);
    steps.push(`describe: ${info.kind}, ${info.used} of ${info.capacity} bytes used`);
    const metrics = metricsSnapshot(region);
    steps.push(`metrics: ${metrics.bytesWritten} bytes written, ${metrics.bytesRead} read`);
  } catch (e) {
    if (e instanceof Refused) throw e;
    const last = steps.length ? steps[steps.length - 1] : 'start';
    throw new Refused(`${last} then failed: ${json(tvmError(e))}`);
  }
  // An error handled in the guest: a handle whose region is gone is refused, typed.
  let stale;
  try {
    const scratch = createRegion('scratch', 64);
    stale = alloc(scratch, 8);
    destroyRegion(scratch);
  } catch (e) {
    throw new Refused(`scratch region failed: ${json(tvmError(e))}`);
  }
  try {
    read(stale, 8);
  } catch (e) {
    const error = tvmError(e);
    if (error.tag !== 'stale-handle') throw new Refused(`expected stale-handle, got ${error.tag}`);
    steps.push(`error handled: stale-handle (${error.val.message})`);
    return { region, copy: second, steps };
  }
  throw new Refused("a destroyed region's handle was accepted");
}

export function repeat(what, src, dst, len, count) {
  try {
    if (what === 'copy-region') {
      for (let i = 0; i < count; i++) copyRegion(src.regionId, src.offset, dst.regionId, dst.offset, len);
      return 0n;
    }
    let total = 0n;
    for (let i = 0; i < count; i++) {
      const data = read(src, len);
      total += BigInt(data.length ? data[0] : 0);
      if (what === 'read-write') write(dst, data);
    }
    return total;
  } catch (e) {
    throw new Refused(tvmError(e));
  }
}
