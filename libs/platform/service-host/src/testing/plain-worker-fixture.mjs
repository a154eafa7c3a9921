// A worker entry that is plain JavaScript, as built workers are: startModuleWorker starts it as is.
import { parentPort } from 'node:worker_threads';

parentPort.postMessage({ argv: process.argv.slice(2), url: import.meta.url });
