// A reporting period as the forms show it (datetime-local, the user's time zone) and as the API
// takes it (RFC 3339, UTC).
export interface Period {
  readonly from: string;
  readonly to: string;
}

function localInput(date: Date): string {
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return shifted.toISOString().slice(0, 16);
}

/** The last `days` days up to the next full hour, as datetime-local values. */
export function recentPeriod(days: number): Period {
  const to = new Date();
  to.setMinutes(60, 0, 0);
  return { from: localInput(new Date(to.getTime() - days * 86_400_000)), to: localInput(to) };
}

export function toApi(local: string): string {
  return new Date(local).toISOString();
}
