// Function lists are data so that policy reviews can read and extend them. Names are matched on
// the unqualified, lower-case function name whatever schema the call names: `public.pg_read_file`
// is as suspicious as `pg_catalog.pg_read_file`, since search_path can make them the same.

/** Server file system, network, process and configuration access, or dynamic SQL: kind `utility`. */
export const DANGEROUS_FUNCTIONS: ReadonlySet<string> = new Set([
  // server file system
  'pg_read_file',
  'pg_read_binary_file',
  'pg_ls_dir',
  'pg_stat_file',
  'pg_file_write',
  'pg_file_rename',
  'pg_file_unlink',
  'pg_file_sync',
  'pg_logdir_ls',
  'pg_ls_logdir',
  'pg_ls_waldir',
  'pg_ls_tmpdir',
  'pg_ls_archive_statusdir',
  'pg_ls_logicalsnapdir',
  'pg_ls_logicalmapdir',
  'pg_ls_replslotdir',
  'lo_import',
  'lo_export',
  // network / other databases
  'dblink',
  'dblink_exec',
  'dblink_connect',
  'dblink_connect_u',
  'dblink_open',
  'dblink_fetch',
  'dblink_send_query',
  'dblink_get_result',
  'dblink_disconnect',
  // session and server control
  'set_config',
  'pg_terminate_backend',
  'pg_cancel_backend',
  'pg_signal_backend',
  'pg_reload_conf',
  'pg_rotate_logfile',
  'pg_promote',
  'pg_switch_wal',
  'pg_create_restore_point',
  'pg_backup_start',
  'pg_backup_stop',
  'pg_start_backup',
  'pg_stop_backup',
  'pg_wal_replay_pause',
  'pg_wal_replay_resume',
  'pg_log_backend_memory_contexts',
  'pg_create_physical_replication_slot',
  'pg_create_logical_replication_slot',
  'pg_drop_replication_slot',
  'pg_copy_physical_replication_slot',
  'pg_copy_logical_replication_slot',
  'pg_replication_slot_advance',
  'pg_logical_emit_message',
  'pg_replication_origin_create',
  'pg_replication_origin_drop',
  'pg_import_system_collations',
  // run SQL given as a string: classifying the caller says nothing about what runs
  'query_to_xml',
  'query_to_xmlschema',
  'query_to_xml_and_xmlschema',
  'cursor_to_xml',
  'cursor_to_xmlschema',
]);

/** Functions that change database state although called from a query: kind at least `write`. */
export const SIDE_EFFECT_FUNCTIONS: ReadonlySet<string> = new Set([
  'nextval',
  'setval',
  'pg_notify',
  'lo_create',
  'lo_creat',
  'lo_unlink',
  'lo_put',
  'lo_from_bytea',
  'lo_open',
  'lo_write',
  'lowrite',
  'lo_truncate',
  'lo_truncate64',
  'pg_advisory_lock',
  'pg_advisory_lock_shared',
  'pg_advisory_xact_lock',
  'pg_advisory_xact_lock_shared',
  'pg_try_advisory_lock',
  'pg_try_advisory_lock_shared',
  'pg_try_advisory_xact_lock',
  'pg_try_advisory_xact_lock_shared',
  'pg_advisory_unlock',
  'pg_advisory_unlock_all',
  'pg_advisory_unlock_shared',
  'pg_sleep',
  'pg_sleep_for',
  'pg_sleep_until',
  'pg_stat_reset',
  'pg_stat_reset_shared',
  'pg_stat_reset_single_table_counters',
  'pg_stat_reset_single_function_counters',
  'pg_stat_reset_slru',
  'pg_stat_statements_reset',
  'txid_current',
  'pg_current_xact_id',
  'pg_export_snapshot',
]);

/**
 * Built-in functions without side effects that agents commonly call. Any other function is
 * flagged `unrecognised-function`: it may be user-defined and VOLATILE (able to write), which
 * a static classifier cannot see; strict policies deny it.
 */
export const KNOWN_READ_ONLY_FUNCTIONS: ReadonlySet<string> = new Set([
  // aggregates and window functions
  'count', 'sum', 'avg', 'min', 'max', 'array_agg', 'string_agg', 'json_agg', 'jsonb_agg',
  'json_object_agg', 'jsonb_object_agg', 'bool_and', 'bool_or', 'every', 'stddev', 'stddev_pop',
  'stddev_samp', 'variance', 'var_pop', 'var_samp', 'percentile_cont', 'percentile_disc', 'mode',
  'row_number', 'rank', 'dense_rank', 'percent_rank', 'cume_dist', 'ntile', 'lag', 'lead',
  'first_value', 'last_value', 'nth_value', 'bit_and', 'bit_or', 'corr', 'covar_pop', 'covar_samp',
  // conditionals
  'coalesce', 'nullif', 'greatest', 'least',
  // strings
  'lower', 'upper', 'length', 'char_length', 'character_length', 'octet_length', 'bit_length',
  'substr', 'substring', 'trim', 'btrim', 'ltrim', 'rtrim', 'concat', 'concat_ws', 'replace',
  'position', 'strpos', 'left', 'right', 'lpad', 'rpad', 'repeat', 'reverse', 'split_part',
  'initcap', 'format', 'quote_ident', 'quote_literal', 'quote_nullable', 'md5', 'sha256', 'sha512',
  'encode', 'decode', 'to_hex', 'ascii', 'chr', 'regexp_replace', 'regexp_match', 'regexp_matches',
  'regexp_split_to_array', 'regexp_split_to_table', 'regexp_like', 'regexp_count', 'starts_with',
  'translate', 'overlay', 'string_to_array', 'array_to_string', 'to_char', 'to_number', 'to_date',
  'to_timestamp', 'unaccent',
  // numbers
  'abs', 'ceil', 'ceiling', 'floor', 'round', 'trunc', 'mod', 'power', 'sqrt', 'cbrt', 'exp', 'ln',
  'log', 'log10', 'sign', 'div', 'pi', 'random', 'width_bucket', 'gcd', 'lcm',
  // dates
  'now', 'current_date', 'current_time', 'current_timestamp', 'localtime', 'localtimestamp',
  'clock_timestamp', 'statement_timestamp', 'transaction_timestamp', 'date_trunc', 'date_part',
  'extract', 'age', 'make_date', 'make_time', 'make_timestamp', 'make_timestamptz', 'make_interval',
  'date_bin', 'timezone', 'isfinite', 'justify_days', 'justify_hours', 'justify_interval',
  'generate_series',
  // arrays and json
  'array_length', 'array_upper', 'array_lower', 'array_position', 'array_positions',
  'array_remove', 'array_append', 'array_prepend', 'array_cat', 'cardinality', 'unnest',
  'array_dims', 'array_ndims', 'json_build_object', 'jsonb_build_object', 'json_build_array',
  'jsonb_build_array', 'to_json', 'to_jsonb', 'row_to_json', 'array_to_json', 'json_each',
  'jsonb_each', 'json_each_text', 'jsonb_each_text', 'json_array_elements', 'jsonb_array_elements',
  'json_array_elements_text', 'jsonb_array_elements_text', 'json_object_keys', 'jsonb_object_keys',
  'jsonb_set', 'jsonb_insert', 'jsonb_strip_nulls', 'jsonb_pretty', 'json_typeof', 'jsonb_typeof',
  'jsonb_path_query', 'jsonb_path_exists', 'jsonb_path_match', 'json_extract_path',
  'jsonb_extract_path', 'json_extract_path_text', 'jsonb_extract_path_text', 'json_array_length',
  'jsonb_array_length',
  // identity and catalog introspection
  'current_user', 'session_user', 'current_schema', 'current_schemas', 'current_database',
  'current_setting', 'version', 'pg_backend_pid', 'pg_typeof', 'pg_get_viewdef',
  'pg_get_functiondef', 'pg_get_indexdef', 'pg_get_constraintdef', 'pg_get_triggerdef',
  'pg_get_expr', 'pg_get_userbyid', 'pg_get_serial_sequence', 'pg_table_size', 'pg_relation_size',
  'pg_total_relation_size', 'pg_indexes_size', 'pg_database_size', 'pg_size_pretty',
  'pg_column_size', 'format_type', 'obj_description', 'col_description', 'has_table_privilege',
  'has_column_privilege', 'has_schema_privilege', 'has_database_privilege',
  'has_function_privilege', 'pg_has_role', 'pg_table_is_visible', 'to_regclass', 'to_regtype',
  'pg_is_in_recovery', 'pg_postmaster_start_time', 'inet_server_addr', 'gen_random_uuid',
  'uuid_generate_v4',
]);

export type FunctionRisk = 'dangerous' | 'side-effect' | 'known-read-only' | 'unrecognised';

export function functionRisk(qualifiedName: readonly string[]): FunctionRisk {
  const name = qualifiedName[qualifiedName.length - 1] ?? '';
  if (DANGEROUS_FUNCTIONS.has(name)) return 'dangerous';
  // The large-object and dblink families grow; match them by prefix as well.
  if (name.startsWith('dblink') || name.startsWith('pg_file_') || name.startsWith('pg_ls_')) return 'dangerous';
  if (SIDE_EFFECT_FUNCTIONS.has(name) || name.startsWith('lo_') || name.startsWith('pg_advisory')) return 'side-effect';
  const schema = qualifiedName.length > 1 ? qualifiedName[qualifiedName.length - 2] : undefined;
  if ((schema === undefined || schema === 'pg_catalog') && KNOWN_READ_ONLY_FUNCTIONS.has(name)) return 'known-read-only';
  return 'unrecognised';
}
