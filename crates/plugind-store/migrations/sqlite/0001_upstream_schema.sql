-- plugind schema for the embedded SQLite database: upstream's table, column, index and
-- constraint names with SQLite storage classes (text/integer/datetime).
CREATE TABLE IF NOT EXISTS plugins (
    id text NOT NULL,
    created_at datetime,
    updated_at datetime,
    plugin_unique_identifier text,
    plugin_id text,
    refers integer DEFAULT 0,
    install_type text,
    manifest_type text,
    remote_declaration text,
    source text DEFAULT '',
    CONSTRAINT plugins_pkey PRIMARY KEY (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_plugin_unique_identifier ON plugins (plugin_unique_identifier);
CREATE INDEX IF NOT EXISTS idx_plugins_plugin_id ON plugins (plugin_id);
CREATE INDEX IF NOT EXISTS idx_plugins_install_type ON plugins (install_type);

CREATE TABLE IF NOT EXISTS plugin_installations (
    id text NOT NULL,
    created_at datetime,
    updated_at datetime,
    tenant_id text,
    plugin_id text,
    plugin_unique_identifier text,
    runtime_type text,
    endpoints_setups integer,
    endpoints_active integer,
    source text,
    meta text,
    CONSTRAINT plugin_installations_pkey PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS idx_plugin_installations_tenant_id ON plugin_installations (tenant_id);
CREATE INDEX IF NOT EXISTS idx_plugin_installations_plugin_id ON plugin_installations (plugin_id);
CREATE INDEX IF NOT EXISTS idx_plugin_installations_plugin_unique_identifier ON plugin_installations (plugin_unique_identifier);
CREATE UNIQUE INDEX IF NOT EXISTS idx_tenant_plugin ON plugin_installations (tenant_id, plugin_id);

CREATE TABLE IF NOT EXISTS plugin_declarations (
    id text NOT NULL,
    created_at datetime,
    updated_at datetime,
    plugin_unique_identifier text,
    plugin_id text,
    declaration text,
    CONSTRAINT plugin_declarations_pkey PRIMARY KEY (id),
    CONSTRAINT uni_plugin_declarations_plugin_unique_identifier UNIQUE (plugin_unique_identifier)
);
CREATE INDEX IF NOT EXISTS idx_plugin_declarations_plugin_id ON plugin_declarations (plugin_id);

CREATE TABLE IF NOT EXISTS endpoints (
    id text NOT NULL,
    created_at datetime,
    updated_at datetime,
    name text DEFAULT 'default',
    hook_id text,
    tenant_id text,
    user_id text,
    plugin_id text,
    expired_at datetime,
    enabled numeric,
    settings text,
    CONSTRAINT endpoints_pkey PRIMARY KEY (id),
    CONSTRAINT uni_endpoints_hook_id UNIQUE (hook_id)
);
CREATE INDEX IF NOT EXISTS idx_endpoints_tenant_id ON endpoints (tenant_id);
CREATE INDEX IF NOT EXISTS idx_endpoints_user_id ON endpoints (user_id);
CREATE INDEX IF NOT EXISTS idx_endpoints_plugin_id ON endpoints (plugin_id);

CREATE TABLE IF NOT EXISTS serverless_runtimes (
    id text NOT NULL,
    created_at datetime,
    updated_at datetime,
    plugin_unique_identifier text,
    function_url text,
    function_name text,
    type text,
    checksum text,
    CONSTRAINT serverless_runtimes_pkey PRIMARY KEY (id),
    CONSTRAINT uni_serverless_runtimes_plugin_unique_identifier UNIQUE (plugin_unique_identifier)
);
CREATE INDEX IF NOT EXISTS idx_serverless_runtimes_checksum ON serverless_runtimes (checksum);

CREATE TABLE IF NOT EXISTS datasource_installations (
    id text NOT NULL,
    created_at datetime,
    updated_at datetime,
    tenant_id text NOT NULL,
    provider text NOT NULL,
    plugin_unique_identifier text,
    plugin_id text,
    CONSTRAINT datasource_installations_pkey PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS idx_datasource_installations_tenant_id ON datasource_installations (tenant_id);
CREATE INDEX IF NOT EXISTS idx_datasource_installations_provider ON datasource_installations (provider);
CREATE INDEX IF NOT EXISTS idx_datasource_installations_plugin_unique_identifier ON datasource_installations (plugin_unique_identifier);
CREATE INDEX IF NOT EXISTS idx_datasource_installations_plugin_id ON datasource_installations (plugin_id);

CREATE TABLE IF NOT EXISTS tool_installations (
    id text NOT NULL,
    created_at datetime,
    updated_at datetime,
    tenant_id text NOT NULL,
    provider text NOT NULL,
    plugin_unique_identifier text,
    plugin_id text,
    CONSTRAINT tool_installations_pkey PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS idx_tool_installations_tenant_id ON tool_installations (tenant_id);
CREATE INDEX IF NOT EXISTS idx_tool_installations_provider ON tool_installations (provider);
CREATE INDEX IF NOT EXISTS idx_tool_installations_plugin_unique_identifier ON tool_installations (plugin_unique_identifier);
CREATE INDEX IF NOT EXISTS idx_tool_installations_plugin_id ON tool_installations (plugin_id);

CREATE TABLE IF NOT EXISTS ai_model_installations (
    id text NOT NULL,
    created_at datetime,
    updated_at datetime,
    provider text NOT NULL,
    tenant_id text NOT NULL,
    plugin_unique_identifier text,
    plugin_id text,
    CONSTRAINT ai_model_installations_pkey PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS idx_ai_model_installations_provider ON ai_model_installations (provider);
CREATE INDEX IF NOT EXISTS idx_ai_model_installations_tenant_id ON ai_model_installations (tenant_id);
CREATE INDEX IF NOT EXISTS idx_ai_model_installations_plugin_unique_identifier ON ai_model_installations (plugin_unique_identifier);
CREATE INDEX IF NOT EXISTS idx_ai_model_installations_plugin_id ON ai_model_installations (plugin_id);

CREATE TABLE IF NOT EXISTS install_tasks (
    id text NOT NULL,
    created_at datetime,
    updated_at datetime,
    status text NOT NULL,
    tenant_id text NOT NULL,
    total_plugins integer NOT NULL,
    completed_plugins integer NOT NULL,
    plugins text,
    CONSTRAINT install_tasks_pkey PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS idx_install_tasks_status ON install_tasks (status);

CREATE TABLE IF NOT EXISTS tenant_storages (
    id text NOT NULL,
    created_at datetime,
    updated_at datetime,
    tenant_id text NOT NULL,
    plugin_id text NOT NULL,
    size integer NOT NULL,
    CONSTRAINT tenant_storages_pkey PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS idx_tenant_storages_tenant_id ON tenant_storages (tenant_id);

CREATE TABLE IF NOT EXISTS agent_strategy_installations (
    id text NOT NULL,
    created_at datetime,
    updated_at datetime,
    tenant_id text NOT NULL,
    provider text NOT NULL,
    plugin_unique_identifier text,
    plugin_id text,
    CONSTRAINT agent_strategy_installations_pkey PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS idx_agent_strategy_installations_tenant_id ON agent_strategy_installations (tenant_id);
CREATE INDEX IF NOT EXISTS idx_agent_strategy_installations_provider ON agent_strategy_installations (provider);
CREATE INDEX IF NOT EXISTS idx_agent_strategy_installations_plugin_unique_identifier ON agent_strategy_installations (plugin_unique_identifier);
CREATE INDEX IF NOT EXISTS idx_agent_strategy_installations_plugin_id ON agent_strategy_installations (plugin_id);

CREATE TABLE IF NOT EXISTS trigger_installations (
    id text NOT NULL,
    created_at datetime,
    updated_at datetime,
    tenant_id text NOT NULL,
    provider text NOT NULL,
    plugin_unique_identifier text,
    plugin_id text,
    CONSTRAINT trigger_installations_pkey PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS idx_trigger_installations_tenant_id ON trigger_installations (tenant_id);
CREATE INDEX IF NOT EXISTS idx_trigger_installations_provider ON trigger_installations (provider);
CREATE INDEX IF NOT EXISTS idx_trigger_installations_plugin_unique_identifier ON trigger_installations (plugin_unique_identifier);
CREATE INDEX IF NOT EXISTS idx_trigger_installations_plugin_id ON trigger_installations (plugin_id);

CREATE TABLE IF NOT EXISTS plugin_readme_records (
    id text NOT NULL,
    created_at datetime,
    updated_at datetime,
    plugin_unique_identifier text NOT NULL,
    language text NOT NULL,
    content text NOT NULL,
    CONSTRAINT plugin_readme_records_pkey PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS idx_plugin_readme_records_plugin_unique_identifier ON plugin_readme_records (plugin_unique_identifier);
