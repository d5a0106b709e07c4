package videos

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/reel-video/reel/internal/platform/queue"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are the videos service's schema migrations.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrations, "migrations")
	return sub
}

// MigrationTable is the goose version table of the videos service.
const MigrationTable = "videos_schema_version"

//go:embed queue_migrations/*.sql
var queueMigrations embed.FS

// MigrateQueue makes the job queue's tables (River's migrations) in the
// videos database, migrated with Migrations first, then the service's own
// indexes on them.
func MigrateQueue(ctx context.Context, db *sqldb.DB) error {
	if err := queue.Migrate(ctx, db); err != nil {
		return err
	}
	sub, _ := fs.Sub(queueMigrations, "queue_migrations")
	if err := sqldb.Migrate(ctx, db, sub, "videos_queue_schema_version"); err != nil {
		return fmt.Errorf("videos: queue indexes: %w", err)
	}
	return nil
}

// OpenAPI is this service's part of the OpenAPI document.
//
//go:embed openapi.json
var OpenAPI []byte
