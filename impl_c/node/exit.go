package node

import "os"

// exitNow ends the process; a variable so that tests can observe fail-stop.
var exitNow = func(code int) { os.Exit(code) }
