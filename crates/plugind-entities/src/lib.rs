//! Leaf crate: the nouns every other plugind crate talks about.
//!
//! Nothing here does IO. Types that mirror upstream wire or storage shapes carry serde derives and
//! keep upstream's field names and order, because Dify reads them byte for byte.

pub mod decimal;
pub mod declaration;
pub mod dispatch;
pub mod endpoint;
pub mod envelope;
pub mod installation;
pub mod management;
pub mod naming;
pub mod permission;
pub mod task;
pub mod uid;
pub mod verification;

pub use declaration::{I18nObject, PluginCategory, PluginDeclaration};
pub use endpoint::{Endpoint, EndpointSetup};
pub use envelope::{DaemonError, ErrorType};
pub use installation::{PluginInstallation, ProviderInstallation, ProviderKind, RuntimeType};
pub use permission::{ModelKind, PluginPermission};
pub use task::{InstallTask, InstallTaskEntry, InstallTaskStatus};
pub use uid::{PluginUniqueIdentifier, UidError};
pub use verification::Verification;
