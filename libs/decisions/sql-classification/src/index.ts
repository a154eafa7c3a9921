// SQL classification for Custodian's policy engine: every statement an agent sends is parsed by
// the real PostgreSQL grammar (libpg-query) and described by kind, command, objects, functions
// and risk flags. Unparseable input is an `ok: false` result: the policy layer denies it.
export { classifySql, classifySqlSync, classifySqlCachedSync, fingerprintSqlSync, loadSqlClassifier, SqlClassificationCache } from './classify-sql.js';
export { normalizeSql, normalizeSqlSync, type SqlNormalization } from './normalize-sql.js';
export { SqlClassificationError, type SqlClassificationErrorCode } from './errors.js';
export { DANGEROUS_FUNCTIONS, SIDE_EFFECT_FUNCTIONS, KNOWN_READ_ONLY_FUNCTIONS, functionRisk, type FunctionRisk } from './function-catalog.js';
export * from './sql-classification.js';
export { derivedColumnReferences } from './column-lineage.js';
