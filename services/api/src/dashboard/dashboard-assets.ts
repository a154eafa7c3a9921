// The dashboard is static assets (built by Vite into services/api/dist/web at `npm run build`)
// that the api service serves itself: no second server. Everything it shows comes from the
// authenticated API; the assets hold no data, so they are served without authentication and the
// page asks the user to sign in (GET /auth/me) before it loads anything.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { DynamicModule } from '@nestjs/common';
import { ServeStaticModule } from '@nestjs/serve-static';

/** services/api/dist/web, from the sources (src/dashboard) and from the build (dist/dashboard) alike. */
export const DEFAULT_DASHBOARD_ASSETS = fileURLToPath(new URL('../../dist/web', import.meta.url));

/** Paths the API answers itself: never the dashboard's index.html, whatever their case. */
const API_PATHS = /^\/(v1|auth|health|metrics)(\/|$)/i;

export interface DashboardAssets {
  readonly module: DynamicModule | undefined;
  /** Why there is no dashboard (assets not built), for the start-up notices. */
  readonly notice: string | undefined;
}

/**
 * The module serving the dashboard from `root` (index.html for every other GET, so client-side
 * routes such as /sessions/<id> load the app), or none when `root` holds no build. Checked once at
 * start-up (before the event loop serves anyone).
 */
export function dashboardAssets(root: string | false = DEFAULT_DASHBOARD_ASSETS): DashboardAssets {
  if (root === false) return { module: undefined, notice: undefined };
  if (!existsSync(`${root}/index.html`)) {
    return { module: undefined, notice: `the dashboard is not built (${root}/index.html missing; run npm run build): the API serves no web page` };
  }
  return {
    module: ServeStaticModule.forRoot({
      rootPath: root,
      exclude: API_PATHS,
      serveStaticOptions: { index: 'index.html', fallthrough: true, dotfiles: 'deny', maxAge: 0 },
    }),
    notice: undefined,
  };
}
