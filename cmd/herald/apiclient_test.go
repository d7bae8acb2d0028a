package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// apiClient is the tests' raw client of the API: it returns the status
// code and lets a test read or forge its token, which the typed client
// package hides. Flows that need neither use package client.
type apiClient struct {
	base  string
	token string
	hc    *http.Client
}

func newAPIClient(base string) *apiClient {
	return &apiClient{base: base, hc: &http.Client{Timeout: 60 * time.Second}}
}

// login exchanges an API client's credentials for a bearer token.
func (c *apiClient) login(ctx context.Context, client, secret string) error {
	var out struct {
		Token string `json:"token"`
	}
	if _, err := c.do(ctx, "POST", "/v1/auth/token", map[string]string{"apiClient": client, "secret": secret}, &out); err != nil {
		return err
	}
	c.token = out.Token
	return nil
}

// apiError is a non-2xx answer.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// do sends a JSON request and decodes a 2xx answer into out (when not nil).
// A non-2xx answer is an *apiError. It returns the status code.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		json.Unmarshal(raw, &e)
		return resp.StatusCode, &apiError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}
