// The protocol-neutral session pipeline: identify → decide → hold for approval → forward → mask → record.
export * from './approval-gate.js';
