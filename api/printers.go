package api

// printers holds the kubectl-style columns for each resource; kinds not
// listed print NAME and AGE. It is read-only after package initialisation.
var printers = map[string]printer{}
