package apiserver

import (
	"context"
	"crypto/subtle"
	"encoding/csv"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// User is an authenticated identity.
type User struct {
	Name   string
	UID    string
	Groups []string
}

type userKey struct{}

// UserFrom returns the request's authenticated user.
func UserFrom(ctx context.Context) (*User, bool) {
	u, ok := ctx.Value(userKey{}).(*User)
	return u, ok
}

// Attributes describe a request for authorization.
type Attributes struct {
	User        *User
	Verb        string
	Namespace   string
	APIGroup    string
	Resource    string
	Subresource string
	Name        string
	Path        string // non-resource requests
}

// Authorizer decides whether a request may proceed; RBAC will implement it.
type Authorizer interface {
	Authorize(ctx context.Context, a Attributes) (allowed bool, reason string)
}

// AllowAuthenticated lets every authenticated user do anything.
type AllowAuthenticated struct{}

func (AllowAuthenticated) Authorize(_ context.Context, a Attributes) (bool, string) {
	return a.User != nil, ""
}

// tokenAuth maps bearer tokens to users.
type tokenAuth map[string]*User

// LoadTokenFile reads the Kubernetes static token CSV: token,user,uid[,"group1,group2"].
func LoadTokenFile(path string, into map[string]*User) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read token file: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	r.Comment = '#'
	recs, err := r.ReadAll()
	if err != nil {
		return fmt.Errorf("parse token file %s: %w", path, err)
	}
	for i, rec := range recs {
		if len(rec) < 3 || rec[0] == "" || rec[1] == "" {
			return fmt.Errorf("token file %s line %d: want token,user,uid[,groups]", path, i+1)
		}
		u := &User{Name: rec[1], UID: rec[2]}
		if len(rec) > 3 && rec[3] != "" {
			for _, g := range strings.Split(rec[3], ",") {
				u.Groups = append(u.Groups, strings.TrimSpace(g))
			}
		}
		into[rec[0]] = u
	}
	return nil
}

func (t tokenAuth) lookup(token string) *User {
	// Constant-time compare so response timing leaks no token prefix.
	var found *User
	for k, u := range t {
		if subtle.ConstantTimeCompare([]byte(k), []byte(token)) == 1 {
			found = u
		}
	}
	return found
}

// authenticate finds the user from a verified client certificate or a bearer token.
func (s *Server) authenticate(r *http.Request) *User {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.PeerCertificates) > 0 {
		c := r.TLS.PeerCertificates[0]
		return &User{Name: c.Subject.CommonName, Groups: append(append([]string{}, c.Subject.Organization...), "system:authenticated")}
	}
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		if u := s.tokens.lookup(strings.TrimSpace(strings.TrimPrefix(h, "Bearer "))); u != nil {
			cp := *u
			cp.Groups = append(append([]string{}, u.Groups...), "system:authenticated")
			return &cp
		}
	}
	return nil
}
