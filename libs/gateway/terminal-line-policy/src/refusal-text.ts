/** `custodian: <message> (rule <id>)` for a terminal; the rule is not repeated when the message already names it. */
export function refusalText(message: string, ruleId: string | null | undefined): string {
  return `custodian: ${message}${ruleId && !message.includes(`(rule ${ruleId})`) ? ` (rule ${ruleId})` : ''}`;
}
