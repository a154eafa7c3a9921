// The SSH gateway against the gateway conformance suite (libs/gateway/gateway-conformance), with
// ssh2 as the client and the upstream's command log (ForceCommand) as the observation point.
import { describeGatewayConformance } from '@custodian/gateway-conformance';
import { sshConformanceFixture } from './testing/conformance-fixture.js';

describeGatewayConformance('SSH (ssh2 client, OpenSSH upstream)', sshConformanceFixture);
