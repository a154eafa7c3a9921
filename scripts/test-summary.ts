// Prints the closing line CI reads, `N passed, N failed, N skipped`, from Vitest's JSON report,
// and lists skipped tests so that no skip is silent.
import { readFileSync } from 'node:fs';

interface AssertionResult {
  readonly fullName: string;
  readonly status: 'passed' | 'failed' | 'skipped' | 'pending' | 'todo' | 'disabled';
  /** Errors of every attempt; a passed test with any failed only before its retry (vitest.config.ts). */
  readonly failureMessages?: readonly string[];
}
interface VitestJsonReport {
  readonly testResults: readonly { readonly name: string; readonly status: string; readonly message?: string; readonly assertionResults: readonly AssertionResult[] }[];
}

const path = process.argv[2];
if (!path) {
  console.error('usage: test-summary.ts <vitest-json-report>');
  process.exit(2);
}
let report: VitestJsonReport;
try {
  report = JSON.parse(readFileSync(path, 'utf8')) as VitestJsonReport;
} catch (err) {
  console.error(`no test report (${(err as Error).message})`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}
let passed = 0;
let failed = 0;
const skipped: string[] = [];
const passedOnRetry: string[] = [];
for (const file of report.testResults) {
  // A file that failed outside its tests (failed to load, or a beforeAll threw, which leaves its
  // tests marked skipped) must count as a failure, never as skips.
  const failedOutsideTests = file.status === 'failed' && !file.assertionResults.some((a) => a.status === 'failed');
  if (failedOutsideTests) {
    failed += 1;
    console.error(`FAILED OUTSIDE ITS TESTS ${file.name}: ${(file.message ?? '').split('\n')[0]}`);
  }
  for (const a of file.assertionResults) {
    if (a.status === 'passed') {
      passed += 1;
      const firstFailure = a.failureMessages?.[0];
      if (firstFailure !== undefined) passedOnRetry.push(`${a.fullName}: ${firstFailure.split('\n')[0]}`);
    }
    else if (a.status === 'failed') failed += 1;
    // Tests that did not run because their file failed are part of that failure, not skips.
    else if (!failedOutsideTests) skipped.push(a.fullName);
  }
}
if (skipped.length > 0) {
  console.log(`skipped (each prints its reason above):`);
  for (const s of skipped) console.log(`  - ${s}`);
}
if (passedOnRetry.length > 0) {
  console.log(`passed only on retry (flaky: each is a bug to fix):`);
  for (const f of passedOnRetry) console.log(`  - ${f}`);
}
console.log(`${passed} passed, ${failed} failed${skipped.length ? `, ${skipped.length} skipped` : ''}`);
