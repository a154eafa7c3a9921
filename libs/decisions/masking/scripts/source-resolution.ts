// Lets plain `node` run this package's TypeScript sources: they import siblings as `./x.js`
// (NodeNext style), which exist on disk only as `./x.ts`.
import { registerHooks } from 'node:module';

export function registerSourceResolution(): void {
  registerHooks({
    resolve(specifier, context, nextResolve) {
      try {
        return nextResolve(specifier, context);
      } catch (error) {
        if (specifier.startsWith('.') && specifier.endsWith('.js')) return nextResolve(specifier.slice(0, -3) + '.ts', context);
        throw error;
      }
    },
  });
}
