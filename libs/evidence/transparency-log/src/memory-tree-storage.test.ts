import { MemoryTreeStorage } from './memory-tree-storage.js';
import { describeTreeStorageContract } from './testing/tree-storage-contract.js';

describeTreeStorageContract('MemoryTreeStorage', async () => {
  const storage = new MemoryTreeStorage();
  return { storage, cleanup: () => storage.close() };
});
