package schema

import (
	"bytes"
	"os"
	"testing"
)

func TestEmbeddedCopiesMatchWireSpec(t *testing.T) {
	for name, emb := range map[string][]byte{"manifest.schema.json": ManifestSchema, "status.schema.json": StatusSchema} {
		b, err := os.ReadFile("../../wire_spec/" + name)
		if err != nil {
			t.Skip("wire_spec not present")
		}
		if !bytes.Equal(b, emb) {
			t.Errorf("%s differs from wire_spec: copy it again", name)
		}
	}
}
