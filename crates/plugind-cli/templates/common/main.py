# Entry point of the {{name}} plugin: the daemon starts it with `python -m main`.
# The SDK reads INSTALL_METHOD (see .env.example) to choose how it talks to Dify:
# stdio under a daemon, or remote debugging over TCP.
from dify_plugin import DifyPluginEnv, Plugin

plugin = Plugin(DifyPluginEnv(MAX_REQUEST_TIMEOUT=120))

if __name__ == "__main__":
    plugin.run()
