export { describeServiceHealthContract } from './service-health-contract.js';
