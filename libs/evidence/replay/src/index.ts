// Replay projections of recorded sessions: see README.md.
export { toAsciicast, replayChannels, isReplayFrame, ReplayError, LiveAsciicastProjector, type LiveReplayMessage, type AsciicastFormat, type AsciicastOptions, type ReplayChannel } from './asciicast.js';
export { terminalFrameFromKubernetes, terminalFramesFor } from './kubernetes-frames.js';
