package node

import "os"

func exitNow(code int) { os.Exit(code) }
