"""The few helpers every layer may import (the core and the I/O layer alike): nothing here
knows a file format, an app or a heavy library."""
