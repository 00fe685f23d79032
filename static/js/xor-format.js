// Numbers as the tutorial prints them: 4 decimals and a real minus sign.
"use strict";

const XorFormat = {
  MINUS: "\u2212",
  number(value, decimals = 4) {
    if (Number.isInteger(value)) return String(value).replace("-", this.MINUS);
    let text = value.toFixed(decimals);
    if (Number(text) === 0) text = (0).toFixed(decimals);
    return text.replace("-", this.MINUS);
  },
  percent(value) { return `${Math.round(value * 100)}%`; },
};
