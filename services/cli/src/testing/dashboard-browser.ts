// Driving the dashboard in a real browser: Debian's Chromium through playwright-core (no browser
// download), headless and without the sandbox (tests run as root in CI).
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
}

/**
 * Opens `path` of the dashboard in a fresh context and signs in through the identity provider's
 * own pages (the test harness's oidc-provider: its development login form, then consent), as a
 * user would. Returns the page, back on the dashboard.
 */
export async function signIn(browser: Browser, dashboard: string, path: string, subject: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(`${dashboard}${path}`);
  await page.getByRole('link', { name: 'Sign in' }).click();
  // The provider's development login page, then its consent page.
  await page.locator('input[name="login"]').fill(subject);
  await page.locator('input[name="password"]').fill('unused-by-dev-interactions');
  await page.locator('button[type="submit"]').first().click();
  for (let step = 0; step < 3 && !page.url().startsWith(dashboard); step++) {
    await page.waitForLoadState();
    if (page.url().startsWith(dashboard)) break;
    const consent = page.locator('button[type="submit"]').first();
    if (await consent.count()) await consent.click();
  }
  await page.waitForURL((url) => url.toString().startsWith(dashboard));
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  return { context, page };
}
