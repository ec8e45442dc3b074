"""SPEC 13.1 / 15.1 / 18 resource limits of one node (values of the spec, in one place)."""

HANDSHAKE_SLOTS = 64  # inbound connections in the handshake phase, per port (the oldest goes for a new one)
HANDSHAKE_DEADLINE = 5.0  # s from accept (or from connect for a dialled link)
MESSAGE1_DEADLINE = 1.0  # s from accept for handshake message 1 to arrive whole (SPEC 13.1, AD-3)
LINGER_SECONDS = 1.0  # lingering close: read and discard for up to this long ... (SPEC 15.1, AD-7)
LINGER_BYTES = 64 << 10  # ... or this many bytes
MAX_CLIENT_MESSAGE = 262160  # application message client -> node on the client port
CLIENT_SESSIONS = 1024  # established client-port sessions
UNBOUND_SESSIONS = 64  # client-port sessions not yet bound to a client key
UNBOUND_IDLE = 10.0  # s an unbound session may stay silent
CLIENT_READ_BYTES = 32 << 20  # partial client messages buffered, all client connections
QUEUE_PAUSE = 1 << 20  # queued to one client connection: stop reading it above this
QUEUE_CLOSE = 4 << 20  # queued to one client connection: close it above this
QUEUE_NODE = 16 << 20  # queued to all client connections
STALL_CLOSE = 10.0  # s a client connection over QUEUE_PAUSE may go without taking anything (13.1, AD-6)
PEER_QUEUE = 64 << 20  # queued to one peer link: further messages for it are dropped
EVENT_BACKLOG = 2048  # queued events not yet handled by the consensus step: pause client reads (4096
# kept up to 14k decoded fetches in flight under a never-reading flood: a heap fragmented for good)
CLIENT_READ_CHUNK = 65536  # bytes read from one client connection per loop round (fairness)
ADMIN_CONNECTIONS = 64
ADMIN_DEADLINE = 5.0  # s for a whole request, and idle keep-alive
ADMIN_REQUEST_LINE = 8192
ADMIN_HEADER_BYTES = 16384
ADMIN_HEADER_LINES = 100
