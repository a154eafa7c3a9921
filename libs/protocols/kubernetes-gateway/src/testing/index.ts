// Test-only exports (the STAND-IN API server and a test PKI) for services that run the gateway in
// their own tests. Not part of the library build.
export { startStandInApiServer, type StandInApiServer, type StandInApiServerOptions, type StandInExec } from './stand-in-api-server.js';
export { makeTestPki, type TestPki } from './test-pki.js';
