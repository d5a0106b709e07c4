package usage

import (
	"embed"
	"io/fs"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are the usage service's schema migrations.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrations, "migrations")
	return sub
}

// MigrationTable is the goose version table of the usage service.
const MigrationTable = "usage_schema_version"

// OpenAPI is this service's part of the OpenAPI document.
//
//go:embed openapi.json
var OpenAPI []byte
