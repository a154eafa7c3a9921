// Driving the dashboard in a real browser: Debian's Chromium through playwright-core (no browser
// download), headless and without the sandbox (tests run as root in CI).
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { build } from 'vite';

/** Where `npm run build` puts the dashboard and the api serves it from. */
const DASHBOARD_DIST = fileURLToPath(new URL('../../../api/dist/web', import.meta.url));

async function filesUnder(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/**
 * Builds the dashboard from the sources as they are now into services/api/dist/web, safely while
 * another test file's server is serving that directory: built elsewhere first, then each file
 * renamed into place (atomic), index.html last, nothing deleted (asset names are content hashes).
 */
export async function buildDashboard(): Promise<void> {
  const out = await mkdtemp(join(tmpdir(), 'custodian-dashboard-build-'));
  try {
    await build({ configFile: fileURLToPath(new URL('../../../api/web/vite.config.ts', import.meta.url)), logLevel: 'warn', build: { outDir: out, emptyOutDir: true } });
    const files = (await filesUnder(out)).sort((a, b) => Number(a.endsWith('index.html')) - Number(b.endsWith('index.html')));
    for (const file of files) {
      const target = join(DASHBOARD_DIST, relative(out, file));
      if (existsSync(target) && (await readFile(target)).equals(await readFile(file))) continue;
      await mkdir(dirname(target), { recursive: true });
      const staged = `${target}.${process.pid}.tmp`;
      await copyFile(file, staged);
      await rename(staged, target);
    }
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

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
