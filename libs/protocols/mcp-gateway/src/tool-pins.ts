// Tool-definition pinning ("rug pull" defence): each tool's name, description, input and output
// schema (and annotations) are fingerprinted per connection when first seen; a later definition
// with another fingerprint blocks the tool until a human accepts it.
import { createHash } from 'node:crypto';
import { canonicalJson } from './json-rpc.js';

export interface PinnedTool {
  readonly fingerprint: string;
  /** A changed definition waiting for a human: the tool is blocked meanwhile. */
  readonly changed?: { readonly fingerprint: string; readonly detectedAt: string };
}

export type PinCheck = { readonly status: 'pinned' | 'first-seen' } | { readonly status: 'changed'; readonly previous: string; readonly current: string; readonly newlyDetected: boolean };

export function toolFingerprint(tool: Record<string, unknown>): string {
  const defining = { name: tool['name'], description: tool['description'], inputSchema: tool['inputSchema'], outputSchema: tool['outputSchema'], annotations: tool['annotations'] };
  return createHash('sha256').update(canonicalJson(defining)).digest('hex');
}

export class ToolPins {
  private readonly pins = new Map<string, PinnedTool>();

  /** Records a definition seen in tools/list; says whether it differs from the pinned one. */
  observe(tool: Record<string, unknown>): PinCheck {
    const name = String(tool['name']);
    const fingerprint = toolFingerprint(tool);
    const pinned = this.pins.get(name);
    if (!pinned) {
      this.pins.set(name, { fingerprint });
      return { status: 'first-seen' };
    }
    if (pinned.fingerprint === fingerprint) {
      // Back to the accepted definition: nothing waits any more.
      if (pinned.changed) this.pins.set(name, { fingerprint });
      return { status: 'pinned' };
    }
    const newlyDetected = pinned.changed?.fingerprint !== fingerprint;
    if (newlyDetected) this.pins.set(name, { fingerprint: pinned.fingerprint, changed: { fingerprint, detectedAt: new Date().toISOString() } });
    return { status: 'changed', previous: pinned.fingerprint, current: fingerprint, newlyDetected };
  }

  /** The tool's changed definition waiting for acceptance, if any. */
  changed(name: string): PinnedTool['changed'] {
    return this.pins.get(name)?.changed;
  }

  /** A human accepts the changed definition with this fingerprint: it becomes the pin. */
  accept(name: string, fingerprint: string): boolean {
    const pinned = this.pins.get(name);
    if (!pinned?.changed || pinned.changed.fingerprint !== fingerprint) return false;
    this.pins.set(name, { fingerprint });
    return true;
  }

  list(): ReadonlyMap<string, PinnedTool> {
    return this.pins;
  }
}
