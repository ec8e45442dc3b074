package node

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
)

// ReadKeyFile reads a SPEC 2 key file: 64 lowercase hex characters and
// one newline, mode 0600 or 0400.
func ReadKeyFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %v", path, err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 && perm != 0o400 {
		return nil, fmt.Errorf("key file %s: mode %o, must be 0600 or 0400", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %v", path, err)
	}
	if len(b) != 65 || b[64] != '\n' || !bytes.Equal(bytes.ToLower(b[:64]), b[:64]) {
		return nil, fmt.Errorf("key file %s: not 64 lowercase hex characters and a newline", path)
	}
	k, err := hex.DecodeString(string(b[:64]))
	if err != nil {
		return nil, fmt.Errorf("key file %s: not hex", path)
	}
	return k, nil
}
