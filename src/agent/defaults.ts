// Defaults the CLI needs without loading the agent (libp2p, LevelDB): keeps every command's start-up short.
export const DEFAULT_HTTP_PORT = 4680
export const DEFAULT_P2P_PORT = 4681
