-- plugind schema for MySQL/MariaDB with the names and types the Go daemon's gorm
-- migration creates (PSC §5.2, §5.3: uuid -> char(36), text -> longtext, timestamptz ->
-- datetime(3)). Indexes live inside CREATE TABLE IF NOT EXISTS because MySQL has no
-- CREATE INDEX IF NOT EXISTS; an existing upstream table is adopted untouched.
CREATE TABLE IF NOT EXISTS plugins (
    id char(36) NOT NULL,
    created_at datetime(3) NULL,
    updated_at datetime(3) NULL,
    plugin_unique_identifier varchar(255) NULL,
    plugin_id varchar(255) NULL,
    refers bigint NULL DEFAULT 0,
    install_type varchar(127) NULL,
    manifest_type varchar(127) NULL,
    remote_declaration longtext NULL,
    source varchar(63) NULL DEFAULT '',
    PRIMARY KEY (id),
    UNIQUE INDEX idx_plugin_unique_identifier (plugin_unique_identifier),
    INDEX idx_plugins_plugin_id (plugin_id),
    INDEX idx_plugins_install_type (install_type)
) DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS plugin_installations (
    id char(36) NOT NULL,
    created_at datetime(3) NULL,
    updated_at datetime(3) NULL,
    tenant_id char(36) NULL,
    plugin_id varchar(255) NULL,
    plugin_unique_identifier varchar(255) NULL,
    runtime_type varchar(127) NULL,
    endpoints_setups bigint NULL,
    endpoints_active bigint NULL,
    source varchar(63) NULL,
    meta longtext NULL,
    PRIMARY KEY (id),
    INDEX idx_plugin_installations_tenant_id (tenant_id),
    INDEX idx_plugin_installations_plugin_id (plugin_id),
    INDEX idx_plugin_installations_plugin_unique_identifier (plugin_unique_identifier),
    UNIQUE INDEX idx_tenant_plugin (tenant_id, plugin_id)
) DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS plugin_declarations (
    id char(36) NOT NULL,
    created_at datetime(3) NULL,
    updated_at datetime(3) NULL,
    plugin_unique_identifier varchar(255) NULL,
    plugin_id varchar(255) NULL,
    declaration longtext NULL,
    PRIMARY KEY (id),
    CONSTRAINT uni_plugin_declarations_plugin_unique_identifier UNIQUE (plugin_unique_identifier),
    INDEX idx_plugin_declarations_plugin_id (plugin_id)
) DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS endpoints (
    id char(36) NOT NULL,
    created_at datetime(3) NULL,
    updated_at datetime(3) NULL,
    name varchar(127) NULL DEFAULT 'default',
    hook_id varchar(127) NULL,
    tenant_id varchar(64) NULL,
    user_id varchar(64) NULL,
    plugin_id varchar(64) NULL,
    expired_at datetime(3) NULL,
    enabled boolean NULL,
    settings longtext NULL,
    PRIMARY KEY (id),
    CONSTRAINT uni_endpoints_hook_id UNIQUE (hook_id),
    INDEX idx_endpoints_tenant_id (tenant_id),
    INDEX idx_endpoints_user_id (user_id),
    INDEX idx_endpoints_plugin_id (plugin_id)
) DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS serverless_runtimes (
    id char(36) NOT NULL,
    created_at datetime(3) NULL,
    updated_at datetime(3) NULL,
    plugin_unique_identifier varchar(255) NULL,
    function_url varchar(255) NULL,
    function_name varchar(127) NULL,
    type varchar(127) NULL,
    checksum varchar(127) NULL,
    PRIMARY KEY (id),
    CONSTRAINT uni_serverless_runtimes_plugin_unique_identifier UNIQUE (plugin_unique_identifier),
    INDEX idx_serverless_runtimes_checksum (checksum)
) DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS datasource_installations (
    id char(36) NOT NULL,
    created_at datetime(3) NULL,
    updated_at datetime(3) NULL,
    tenant_id char(36) NOT NULL,
    provider varchar(127) NOT NULL,
    plugin_unique_identifier varchar(255) NULL,
    plugin_id varchar(255) NULL,
    PRIMARY KEY (id),
    INDEX idx_datasource_installations_tenant_id (tenant_id),
    INDEX idx_datasource_installations_provider (provider),
    INDEX idx_datasource_installations_plugin_unique_identifier (plugin_unique_identifier),
    INDEX idx_datasource_installations_plugin_id (plugin_id)
) DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS tool_installations (
    id char(36) NOT NULL,
    created_at datetime(3) NULL,
    updated_at datetime(3) NULL,
    tenant_id char(36) NOT NULL,
    provider varchar(127) NOT NULL,
    plugin_unique_identifier varchar(255) NULL,
    plugin_id varchar(255) NULL,
    PRIMARY KEY (id),
    INDEX idx_tool_installations_tenant_id (tenant_id),
    INDEX idx_tool_installations_provider (provider),
    INDEX idx_tool_installations_plugin_unique_identifier (plugin_unique_identifier),
    INDEX idx_tool_installations_plugin_id (plugin_id)
) DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS ai_model_installations (
    id char(36) NOT NULL,
    created_at datetime(3) NULL,
    updated_at datetime(3) NULL,
    provider varchar(127) NOT NULL,
    tenant_id char(36) NOT NULL,
    plugin_unique_identifier varchar(255) NULL,
    plugin_id varchar(255) NULL,
    PRIMARY KEY (id),
    INDEX idx_ai_model_installations_provider (provider),
    INDEX idx_ai_model_installations_tenant_id (tenant_id),
    INDEX idx_ai_model_installations_plugin_unique_identifier (plugin_unique_identifier),
    INDEX idx_ai_model_installations_plugin_id (plugin_id)
) DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS install_tasks (
    id char(36) NOT NULL,
    created_at datetime(3) NULL,
    updated_at datetime(3) NULL,
    status varchar(50) NOT NULL,
    tenant_id char(36) NOT NULL,
    total_plugins bigint NOT NULL,
    completed_plugins bigint NOT NULL,
    plugins longtext NULL,
    PRIMARY KEY (id),
    INDEX idx_install_tasks_status (status)
) DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS tenant_storages (
    id char(36) NOT NULL,
    created_at datetime(3) NULL,
    updated_at datetime(3) NULL,
    tenant_id varchar(255) NOT NULL,
    plugin_id varchar(255) NOT NULL,
    size bigint NOT NULL,
    PRIMARY KEY (id),
    INDEX idx_tenant_storages_tenant_id (tenant_id)
) DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS agent_strategy_installations (
    id char(36) NOT NULL,
    created_at datetime(3) NULL,
    updated_at datetime(3) NULL,
    tenant_id char(36) NOT NULL,
    provider varchar(127) NOT NULL,
    plugin_unique_identifier varchar(255) NULL,
    plugin_id varchar(255) NULL,
    PRIMARY KEY (id),
    INDEX idx_agent_strategy_installations_tenant_id (tenant_id),
    INDEX idx_agent_strategy_installations_provider (provider),
    INDEX idx_agent_strategy_installations_plugin_unique_identifier (plugin_unique_identifier),
    INDEX idx_agent_strategy_installations_plugin_id (plugin_id)
) DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS trigger_installations (
    id char(36) NOT NULL,
    created_at datetime(3) NULL,
    updated_at datetime(3) NULL,
    tenant_id char(36) NOT NULL,
    provider varchar(127) NOT NULL,
    plugin_unique_identifier varchar(255) NULL,
    plugin_id varchar(255) NULL,
    PRIMARY KEY (id),
    INDEX idx_trigger_installations_tenant_id (tenant_id),
    INDEX idx_trigger_installations_provider (provider),
    INDEX idx_trigger_installations_plugin_unique_identifier (plugin_unique_identifier),
    INDEX idx_trigger_installations_plugin_id (plugin_id)
) DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS plugin_readme_records (
    id char(36) NOT NULL,
    created_at datetime(3) NULL,
    updated_at datetime(3) NULL,
    plugin_unique_identifier varchar(255) NOT NULL,
    language varchar(10) NOT NULL,
    content longtext NOT NULL,
    PRIMARY KEY (id),
    INDEX idx_plugin_readme_records_plugin_unique_identifier (plugin_unique_identifier)
) DEFAULT CHARSET = utf8mb4;
