// Line-level shell policy for terminals, shared by the SSH and Kubernetes exec gateways: see README.md.
export { LineEditor, AlternateScreenTracker, type EditorEvent } from './line-editor.js';
export { TerminalLineGate, UNVERIFIABLE_LINE_RULE, type TerminalLineGateContext, type UnverifiableLinePolicy } from './terminal-line-gate.js';
export { StdinLineGate, MAX_STDIN_LINE, LINE_TOO_LONG_RULE, type StdinLineGatePorts } from './stdin-line-gate.js';
export type { TerminalPorts, LineGateContext } from './terminal-ports.js';
export { refusalText } from './refusal-text.js';
export { STDIN_LINES_RULE, isShellReadingStdin, lineDecidedShellDecision } from './line-decided-shell.js';
