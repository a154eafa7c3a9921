// Replay projections of recorded sessions: see README.md.
export { toAsciicast, replayChannels, ReplayError, type AsciicastFormat, type AsciicastOptions, type ReplayChannel } from './asciicast.js';
