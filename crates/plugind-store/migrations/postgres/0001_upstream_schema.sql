-- plugind schema for PostgreSQL, identical in names and types to the tables the Go daemon's
-- `commandline migrate` creates (PSC §5.2). Every statement is IF NOT EXISTS so an existing
-- upstream database is adopted as it is.

CREATE TABLE IF NOT EXISTS plugins (
    id uuid NOT NULL,
    created_at timestamptz,
    updated_at timestamptz,
    plugin_unique_identifier varchar(255),
    plugin_id varchar(255),
    refers bigint DEFAULT 0,
    install_type varchar(127),
    manifest_type varchar(127),
    remote_declaration text,
    source varchar(63) DEFAULT '',
    CONSTRAINT plugins_pkey PRIMARY KEY (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_plugin_unique_identifier ON plugins (plugin_unique_identifier);
CREATE INDEX IF NOT EXISTS idx_plugins_plugin_id ON plugins (plugin_id);
CREATE INDEX IF NOT EXISTS idx_plugins_install_type ON plugins (install_type);

CREATE TABLE IF NOT EXISTS plugin_installations (
    id uuid NOT NULL,
    created_at timestamptz,
    updated_at timestamptz,
    tenant_id uuid,
    plugin_id varchar(255),
    plugin_unique_identifier varchar(255),
    runtime_type varchar(127),
    endpoints_setups bigint,
    endpoints_active bigint,
    source varchar(63),
    meta text,
    CONSTRAINT plugin_installations_pkey PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS idx_plugin_installations_tenant_id ON plugin_installations (tenant_id);
CREATE INDEX IF NOT EXISTS idx_plugin_installations_plugin_id ON plugin_installations (plugin_id);
CREATE INDEX IF NOT EXISTS idx_plugin_installations_plugin_unique_identifier ON plugin_installations (plugin_unique_identifier);
CREATE UNIQUE INDEX IF NOT EXISTS idx_tenant_plugin ON plugin_installations (tenant_id, plugin_id);

CREATE TABLE IF NOT EXISTS plugin_declarations (
    id uuid NOT NULL,
    created_at timestamptz,
    updated_at timestamptz,
    plugin_unique_identifier varchar(255),
    plugin_id varchar(255),
    declaration text,
    CONSTRAINT plugin_declarations_pkey PRIMARY KEY (id),
    CONSTRAINT uni_plugin_declarations_plugin_unique_identifier UNIQUE (plugin_unique_identifier)
);
CREATE INDEX IF NOT EXISTS idx_plugin_declarations_plugin_id ON plugin_declarations (plugin_id);

CREATE TABLE IF NOT EXISTS endpoints (
    id uuid NOT NULL,
    created_at timestamptz,
    updated_at timestamptz,
    name varchar(127) DEFAULT 'default',
    hook_id varchar(127),
    tenant_id varchar(64),
    user_id varchar(64),
    plugin_id varchar(64),
    expired_at timestamptz,
    enabled boolean,
    settings text,
    CONSTRAINT endpoints_pkey PRIMARY KEY (id),
    CONSTRAINT uni_endpoints_hook_id UNIQUE (hook_id)
);
CREATE INDEX IF NOT EXISTS idx_endpoints_tenant_id ON endpoints (tenant_id);
CREATE INDEX IF NOT EXISTS idx_endpoints_user_id ON endpoints (user_id);
CREATE INDEX IF NOT EXISTS idx_endpoints_plugin_id ON endpoints (plugin_id);

CREATE TABLE IF NOT EXISTS serverless_runtimes (
    id uuid NOT NULL,
    created_at timestamptz,
    updated_at timestamptz,
    plugin_unique_identifier varchar(255),
    function_url varchar(255),
    function_name varchar(127),
    type varchar(127),
    checksum varchar(127),
    CONSTRAINT serverless_runtimes_pkey PRIMARY KEY (id),
    CONSTRAINT uni_serverless_runtimes_plugin_unique_identifier UNIQUE (plugin_unique_identifier)
);
CREATE INDEX IF NOT EXISTS idx_serverless_runtimes_checksum ON serverless_runtimes (checksum);

CREATE TABLE IF NOT EXISTS datasource_installations (
    id uuid NOT NULL,
    created_at timestamptz,
    updated_at timestamptz,
    tenant_id uuid NOT NULL,
    provider varchar(127) NOT NULL,
    plugin_unique_identifier varchar(255),
    plugin_id varchar(255),
    CONSTRAINT datasource_installations_pkey PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS idx_datasource_installations_tenant_id ON datasource_installations (tenant_id);
CREATE INDEX IF NOT EXISTS idx_datasource_installations_provider ON datasource_installations (provider);
CREATE INDEX IF NOT EXISTS idx_datasource_installations_plugin_unique_identifier ON datasource_installations (plugin_unique_identifier);
CREATE INDEX IF NOT EXISTS idx_datasource_installations_plugin_id ON datasource_installations (plugin_id);

CREATE TABLE IF NOT EXISTS tool_installations (
    id uuid NOT NULL,
    created_at timestamptz,
    updated_at timestamptz,
    tenant_id uuid NOT NULL,
    provider varchar(127) NOT NULL,
    plugin_unique_identifier varchar(255),
    plugin_id varchar(255),
    CONSTRAINT tool_installations_pkey PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS idx_tool_installations_tenant_id ON tool_installations (tenant_id);
CREATE INDEX IF NOT EXISTS idx_tool_installations_provider ON tool_installations (provider);
CREATE INDEX IF NOT EXISTS idx_tool_installations_plugin_unique_identifier ON tool_installations (plugin_unique_identifier);
CREATE INDEX IF NOT EXISTS idx_tool_installations_plugin_id ON tool_installations (plugin_id);

CREATE TABLE IF NOT EXISTS ai_model_installations (
    id uuid NOT NULL,
    created_at timestamptz,
    updated_at timestamptz,
    provider varchar(127) NOT NULL,
    tenant_id uuid NOT NULL,
    plugin_unique_identifier varchar(255),
    plugin_id varchar(255),
    CONSTRAINT ai_model_installations_pkey PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS idx_ai_model_installations_provider ON ai_model_installations (provider);
CREATE INDEX IF NOT EXISTS idx_ai_model_installations_tenant_id ON ai_model_installations (tenant_id);
CREATE INDEX IF NOT EXISTS idx_ai_model_installations_plugin_unique_identifier ON ai_model_installations (plugin_unique_identifier);
CREATE INDEX IF NOT EXISTS idx_ai_model_installations_plugin_id ON ai_model_installations (plugin_id);

CREATE TABLE IF NOT EXISTS install_tasks (
    id uuid NOT NULL,
    created_at timestamptz,
    updated_at timestamptz,
    status varchar(50) NOT NULL,
    tenant_id uuid NOT NULL,
    total_plugins bigint NOT NULL,
    completed_plugins bigint NOT NULL,
    plugins text,
    CONSTRAINT install_tasks_pkey PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS idx_install_tasks_status ON install_tasks (status);

CREATE TABLE IF NOT EXISTS tenant_storages (
    id uuid NOT NULL,
    created_at timestamptz,
    updated_at timestamptz,
    tenant_id varchar(255) NOT NULL,
    plugin_id varchar(255) NOT NULL,
    size bigint NOT NULL,
    CONSTRAINT tenant_storages_pkey PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS idx_tenant_storages_tenant_id ON tenant_storages (tenant_id);

CREATE TABLE IF NOT EXISTS agent_strategy_installations (
    id uuid NOT NULL,
    created_at timestamptz,
    updated_at timestamptz,
    tenant_id uuid NOT NULL,
    provider varchar(127) NOT NULL,
    plugin_unique_identifier varchar(255),
    plugin_id varchar(255),
    CONSTRAINT agent_strategy_installations_pkey PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS idx_agent_strategy_installations_tenant_id ON agent_strategy_installations (tenant_id);
CREATE INDEX IF NOT EXISTS idx_agent_strategy_installations_provider ON agent_strategy_installations (provider);
CREATE INDEX IF NOT EXISTS idx_agent_strategy_installations_plugin_unique_identifier ON agent_strategy_installations (plugin_unique_identifier);
CREATE INDEX IF NOT EXISTS idx_agent_strategy_installations_plugin_id ON agent_strategy_installations (plugin_id);

CREATE TABLE IF NOT EXISTS trigger_installations (
    id uuid NOT NULL,
    created_at timestamptz,
    updated_at timestamptz,
    tenant_id uuid NOT NULL,
    provider varchar(127) NOT NULL,
    plugin_unique_identifier varchar(255),
    plugin_id varchar(255),
    CONSTRAINT trigger_installations_pkey PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS idx_trigger_installations_tenant_id ON trigger_installations (tenant_id);
CREATE INDEX IF NOT EXISTS idx_trigger_installations_provider ON trigger_installations (provider);
CREATE INDEX IF NOT EXISTS idx_trigger_installations_plugin_unique_identifier ON trigger_installations (plugin_unique_identifier);
CREATE INDEX IF NOT EXISTS idx_trigger_installations_plugin_id ON trigger_installations (plugin_id);

CREATE TABLE IF NOT EXISTS plugin_readme_records (
    id uuid NOT NULL,
    created_at timestamptz,
    updated_at timestamptz,
    plugin_unique_identifier varchar(255) NOT NULL,
    language varchar(10) NOT NULL,
    content text NOT NULL,
    CONSTRAINT plugin_readme_records_pkey PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS idx_plugin_readme_records_plugin_unique_identifier ON plugin_readme_records (plugin_unique_identifier);

-- Databases written by old daemon versions still carry a NOT NULL `declaration` column on some
-- tables; relax it so inserts that no longer fill it keep working (PSC §5.1).
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['plugins', 'serverless_runtimes', 'tool_installations',
                             'ai_model_installations', 'agent_strategy_installations',
                             'trigger_installations']
    LOOP
        IF EXISTS (SELECT 1 FROM information_schema.columns
                   WHERE table_schema = current_schema() AND table_name = t
                     AND column_name = 'declaration') THEN
            EXECUTE format('ALTER TABLE %I ALTER COLUMN declaration DROP NOT NULL', t);
        END IF;
    END LOOP;
END
$$;
