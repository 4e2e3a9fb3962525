package cluster

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Join tokens look like "skiff1.<id>.<secret>.<ca pin hex>": the id names
// the token (and its Secret), the secret proves possession, and the pin lets
// the joining node check the cluster's CA before it trusts anything.
const tokenPrefix = "skiff1"

// Token errors a joining node reports to its user.
var (
	ErrTokenMalformed = errors.New("the join token is malformed (want skiff1.<id>.<secret>.<ca-hash>)")
	ErrTokenUnknown   = errors.New("the join token is unknown or was revoked")
	ErrTokenExpired   = errors.New("the join token has expired")
)

// TokenSecretType is the Secret type bootstrap tokens are stored as.
const TokenSecretType corev1.SecretType = "bootstrap.kubernetes.io/token"

var (
	tokenIDRe     = regexp.MustCompile(`^[a-z0-9]{6}$`)
	tokenSecretRe = regexp.MustCompile(`^[a-z0-9]{16}$`)
	pinRe         = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Token is a parsed join token.
type Token struct {
	ID, Secret string
	Pin        string // "sha256:<hex>"
}

// String renders the token as users paste it.
func (t Token) String() string {
	return strings.Join([]string{tokenPrefix, t.ID, t.Secret, strings.TrimPrefix(t.Pin, "sha256:")}, ".")
}

// ParseToken parses a join token.
func ParseToken(s string) (Token, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 4 || parts[0] != tokenPrefix || !tokenIDRe.MatchString(parts[1]) ||
		!tokenSecretRe.MatchString(parts[2]) || !pinRe.MatchString(parts[3]) {
		return Token{}, ErrTokenMalformed
	}
	return Token{ID: parts[1], Secret: parts[2], Pin: "sha256:" + parts[3]}, nil
}

// NewToken makes a random token for a CA.
func NewToken(ca *CA) Token {
	return Token{ID: randomString(6), Secret: randomString(16), Pin: ca.Pin()}
}

func randomString(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// TokenSecretName is the kube-system Secret that records a token.
func TokenSecretName(id string) string { return "bootstrap-token-" + id }

// TokenSecret is the stored form of a token: only a hash of the secret is
// kept, so reading the Secret does not let anyone join.
func TokenSecret(t Token, role string, ttl time.Duration, now time.Time, description string) *corev1.Secret {
	sum := sha256.Sum256([]byte(t.Secret))
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: TokenSecretName(t.ID), Namespace: metav1.NamespaceSystem},
		Type:       TokenSecretType,
		Data: map[string][]byte{
			"token-id":            []byte(t.ID),
			"token-secret-sha256": []byte(hex.EncodeToString(sum[:])),
			"role":                []byte(role),
			"description":         []byte(description),
		},
	}
	if ttl > 0 {
		s.Data["expiration"] = []byte(now.Add(ttl).UTC().Format(time.RFC3339))
	}
	return s
}

// checkToken verifies a presented token against its stored Secret and
// returns the role it grants.
func checkToken(t Token, s *corev1.Secret, now time.Time) (string, error) {
	if s == nil || s.Type != TokenSecretType || s.DeletionTimestamp != nil {
		return "", ErrTokenUnknown
	}
	sum := sha256.Sum256([]byte(t.Secret))
	want := s.Data["token-secret-sha256"]
	if subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), want) != 1 {
		return "", ErrTokenUnknown
	}
	if exp := string(s.Data["expiration"]); exp != "" {
		at, err := time.Parse(time.RFC3339, exp)
		if err != nil || now.After(at) {
			return "", fmt.Errorf("%w (at %s)", ErrTokenExpired, exp)
		}
	}
	role := string(s.Data["role"])
	if role != RoleServer && role != RoleWorker {
		role = RoleWorker
	}
	return role, nil
}
