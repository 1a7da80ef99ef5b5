//! A stand-in for the `vscode` module, which exists only inside VS Code: enough for the
//! extension and vscode-languageclient to load under plain Node so that the extension's pure
//! functions can be tested. Every property is another stand-in; nothing here does anything.
'use strict';

const standIn = new Proxy(function () {}, {
  get(target, property) {
    if (property === '__esModule') {
      return false;
    }
    if (property === Symbol.toPrimitive) {
      return () => '';
    }
    return standIn;
  },
  apply() {
    return standIn;
  },
  construct() {
    return standIn;
  },
});

module.exports = standIn;
