// Bytes longer than the pipeline's frame size (64 KiB by default) recorded whole: cut into frames
// of at most that size, in order, so that the recording holds every byte (recordFrame alone keeps
// the first maxFrameBytes and marks the rest truncated). SFTP READ replies and WRITE data reach
// 256 KiB.
import type { FrameDirection, PipelineSession } from '@custodian/session-pipeline';

export function recordWhole(session: PipelineSession, direction: FrameDirection, label: string, data: Buffer, channel: number): void {
  const limit = session.maxFrameBytes;
  if (data.length <= limit) {
    session.recordFrame(direction, label, data, { channel });
    return;
  }
  for (let at = 0; at < data.length; at += limit) session.recordFrame(direction, label, data.subarray(at, at + limit), { channel });
}
