// Decodes the API's base64 little-endian float16 arrays into Float32Array, exactly (subnormals, infinities, NaN).
"use strict";

const Float16 = (() => {
  // Every one of the 65,536 half-precision bit patterns, decoded once: a lookup is faster than the arithmetic.
  let table = null;

  function decodeBits(bits) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const fraction = bits & 0x3ff;
    if (exponent === 0) return sign * fraction * 2 ** -24; // zero and subnormals: no leading 1
    if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
    return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
  }

  function lookup() {
    if (!table) {
      table = new Float32Array(65536);
      for (let bits = 0; bits < 65536; bits++) table[bits] = decodeBits(bits);
    }
    return table;
  }

  // base64 text -> Float32Array; `expected` (optional) is the element count the shape promises.
  function decode(base64, expected) {
    const text = atob(base64);
    if (text.length % 2) throw new Error("float16 data has an odd number of bytes");
    const count = text.length / 2;
    if (expected !== undefined && expected !== count) {
      throw new Error(`float16 data holds ${count} numbers, the shape says ${expected}`);
    }
    const values = lookup();
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      out[i] = values[text.charCodeAt(2 * i) | (text.charCodeAt(2 * i + 1) << 8)]; // little-endian
    }
    return out;
  }

  const size = (shape) => shape.reduce((n, d) => n * d, 1);

  return { decode, decodeBits, size };
})();
