// The Kubernetes gateway against the gateway conformance suite (libs/gateway/gateway-conformance),
// with @kubernetes/client-node's Exec (`exec -i … -- sh`, stdin lines decided one by one) as the
// client and the STAND-IN API server's exec log as the observation point.
import { describeGatewayConformance } from '@custodian/gateway-conformance';
import { kubernetesConformanceFixture } from './testing/conformance-fixture.js';

describeGatewayConformance('Kubernetes exec (@kubernetes/client-node, stand-in API server)', kubernetesConformanceFixture);
