package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	verrors "github.com/pb33f/libopenapi-validator/errors"
)

// The contract: every request a test sends through env.do, and every
// answer it gets, is checked against openapi.json (decision 0025), so each
// HTTP test is also a test of the document. The validator is built once per
// test binary; it is safe for concurrent use.
var contract struct {
	once sync.Once
	v    validator.Validator
	err  error
}

// contractValidator returns the validator of openapi.json, failing t when
// the document does not build.
func contractValidator(t testing.TB) validator.Validator {
	t.Helper()
	contract.once.Do(func() {
		contract.v, contract.err = newContract("openapi.json")
	})
	if contract.err != nil {
		t.Fatalf("openapi.json: %v", contract.err)
	}
	return contract.v
}

// newContract builds a validator of the OpenAPI document in file.
func newContract(file string) (validator.Validator, error) {
	spec, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return newContractFrom(spec)
}

func newContractFrom(spec []byte) (validator.Validator, error) {
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		return nil, err
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		return nil, fmt.Errorf("invalid document: %s", describeViolations(verrs))
	}
	return v, nil
}

// contractViolations returns what in the exchange does not match the
// document v, "" when all does. The request is checked only when the answer
// is 2xx (tests send bad requests on purpose, to see them refused); the
// answer always, errors against the Error schema included. An answer to a
// path the document does not have is not checked: only 404 and 405 may
// come from there, and TestOpenAPI keeps routes and paths in step.
func contractViolations(v validator.Validator, method, url string, header http.Header, reqBody []byte,
	status int, respHeader http.Header, respBody []byte) string {
	newReq := func() *http.Request {
		hr, err := http.NewRequest(method, url, bytes.NewReader(reqBody))
		if err != nil {
			panic(err)
		}
		hr.Header = header.Clone()
		return hr
	}
	var errs []*verrors.ValidationError
	if status >= 200 && status < 300 {
		_, rerrs := v.ValidateHttpRequest(newReq())
		errs = append(errs, rerrs...)
	}
	hr := newReq()
	resp := &http.Response{StatusCode: status, Header: respHeader.Clone(), Request: hr,
		Body: io.NopCloser(bytes.NewReader(respBody))}
	_, rerrs := v.ValidateHttpResponse(hr, resp)
	for _, e := range rerrs {
		if e.ValidationType == "path" && (status == http.StatusNotFound || status == http.StatusMethodNotAllowed) {
			continue
		}
		errs = append(errs, e)
	}
	if len(errs) == 0 {
		return ""
	}
	return describeViolations(errs)
}

// describeViolations lists errs one a line, with the field and the reason
// of each schema failure.
func describeViolations(errs []*verrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "\n  - %s", e.Message)
		if e.Reason != "" && e.Reason != e.Message {
			fmt.Fprintf(&b, ": %s", e.Reason)
		}
		for _, f := range e.SchemaValidationErrors {
			where := f.FieldPath
			if where == "" {
				where = "/" + strings.Join(f.InstancePath, "/")
			}
			fmt.Fprintf(&b, "\n      %s: %s (%s)", where, f.Reason, f.KeywordLocation)
		}
	}
	return b.String()
}

// TestContractCatchesRename shows the contract is strict about answers: a
// field renamed in the document, or in an answer, is a violation, named.
func TestContractCatchesRename(t *testing.T) {
	e := mustEnv(t)
	e.setup()
	path := "/v1/tenants/acme/instances/sandbox"
	resp := e.must(200, req{method: "GET", path: path, token: e.admin})
	header := http.Header{"Authorization": {"Bearer " + e.admin}}
	check := func(v validator.Validator, body []byte) string {
		return contractViolations(v, "GET", e.srv.URL+path, header, nil, resp.status, resp.header, body)
	}
	if bad := check(contractValidator(t), resp.body); bad != "" {
		t.Fatalf("the answer as sent does not match the document:%s", bad)
	}

	// The code renames a field: the answer has "created" for "createdAt".
	renamed := bytes.Replace(resp.body, []byte(`"createdAt"`), []byte(`"created"`), 1)
	if bad := check(contractValidator(t), renamed); !strings.Contains(bad, "created") {
		t.Errorf("an answer with createdAt renamed passes the contract (%q): %s", bad, renamed)
	}

	// The document renames a field: Instance.createdAt becomes Instance.created.
	spec, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(spec, &doc); err != nil {
		t.Fatal(err)
	}
	inst := doc["components"].(map[string]any)["schemas"].(map[string]any)["Instance"].(map[string]any)
	props := inst["properties"].(map[string]any)
	props["created"] = props["createdAt"]
	delete(props, "createdAt")
	for i, r := range inst["required"].([]any) {
		if r == "createdAt" {
			inst["required"].([]any)[i] = "created"
		}
	}
	spec, err = json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	v, err := newContractFrom(spec)
	if err != nil {
		t.Fatal(err)
	}
	if bad := check(v, resp.body); !strings.Contains(bad, "createdAt") || !strings.Contains(bad, "created") {
		t.Errorf("a document with Instance.createdAt renamed accepts the answer (%q): %s", bad, resp.body)
	}
}
