// Shell command classification for Custodian's policy engine: every program a command line
// would run, found by a real bash parser (tree-sitter-bash), including programs behind
// wrappers and inside `sh -c` strings. Unparseable or oversized input is `ok: false`: denied.
export { classifyShell, classifyShellSync, loadShellClassifier } from './classify-shell.js';
export { ShellClassificationError, type ShellClassificationErrorCode } from './errors.js';
export { WRAPPERS, SHELLS, INTERPRETERS, type WrapperSpec } from './wrappers.js';
export * from './shell-classification.js';
