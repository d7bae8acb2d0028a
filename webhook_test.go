package herald_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/heraldtest"
)

// clientPair returns a client certificate and its key, in PEM.
func clientPair(t *testing.T, cn string) (cert, key string) {
	p := heraldtest.NewCA(t).Issue(t, cn)
	return string(p.CertPEM), string(p.KeyPEM)
}

func TestWebhookClientCertificateValidation(t *testing.T) {
	cert, key := clientPair(t, "herald-client")
	otherCert, otherKey := clientPair(t, "someone-else")
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name      string
		cert, key *string
		field     string // "" when valid
		mention   string
	}{
		{"matching pair", str(cert), str(key), "", ""},
		{"both cleared", str(""), str(""), "", ""},
		{"neither given", nil, nil, "", ""},
		{"surrounding white space", str("\n " + cert + " \n"), str(key + "\n\n"), "", ""},
		{"certificate without key", str(cert), nil, "clientKey", "required"},
		{"key without certificate", nil, str(key), "clientCertificate", "required"},
		{"key of another certificate", str(cert), str(otherKey), "clientKey", "does not go with clientCertificate"},
		{"certificate of another key", str(otherCert), str(key), "clientKey", "does not go with clientCertificate"},
		{"certificate not PEM", str("MIIBIjANBgkq"), str(key), "clientCertificate", "PEM certificates"},
		{"key pasted with the certificate", str(cert + key), str(key), "clientCertificate", "PRIVATE KEY block"},
		{"text after the certificate", str(cert + "trailing"), str(key), "clientCertificate", "nothing else"},
		{"certificate block that does not parse", str("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), str(key), "clientCertificate", "does not parse"},
		{"key not PEM", str(cert), str("secret"), "clientKey", "PEM private key"},
		{"key too long", str(cert), str(strings.Repeat("k", 17<<10)), "clientKey", "16 KiB"},
	} {
		w := &herald.Webhook{Payload: herald.PayloadConfig{Format: herald.FormatWelkin}, TimeoutSeconds: 30}
		herald.WebhookUpdate{ClientCertificate: tc.cert, ClientKey: tc.key}.Apply(w)
		err := w.Validate()
		var he *herald.Error
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v, want valid", tc.name, err)
		case tc.field == "":
		case !errors.As(err, &he) || he.Field != tc.field || he.Code != herald.EINVALID:
			t.Errorf("%s: %v, want an invalid error on %s", tc.name, err, tc.field)
		case !strings.Contains(he.Message, tc.mention) || !strings.Contains(he.Message, tc.field):
			t.Errorf("%s: message %q, want it to name %s and say %q", tc.name, he.Message, tc.field, tc.mention)
		}
	}
}

// The client key is write-only: JSON says only that there is one, and
// neither fmt nor slog print it.
func TestWebhookClientKeyNeverLeaves(t *testing.T) {
	cert, key := clientPair(t, "herald-client")
	w := herald.Webhook{Name: "wh-mtls", ClientCertificate: cert, ClientKey: herald.PrivateKeyPEM(key)}
	keyBody := strings.Split(key, "\n")[1] // a line of the key's base64

	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["hasClientKey"] != true || got["clientCertificate"] != cert || got["name"] != "wh-mtls" {
		t.Errorf("JSON %s: want name, clientCertificate and hasClientKey true", b)
	}
	if _, ok := got["clientKey"]; ok {
		t.Errorf("JSON %s carries clientKey", b)
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%v %+v %#v %s", w, w, w, w.ClientKey)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "webhook", w, "key", w.ClientKey)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "webhook", w, "key", w.ClientKey)
	for _, out := range []string{string(b), buf.String()} {
		if strings.Contains(out, keyBody) || strings.Contains(out, "PRIVATE KEY") {
			t.Errorf("the key leaked into %s", out)
		}
	}

	w.ClientCertificate, w.ClientKey = "", ""
	b, _ = json.Marshal(w)
	if !strings.Contains(string(b), `"hasClientKey":false`) {
		t.Errorf("JSON without a key: %s", b)
	}
}
