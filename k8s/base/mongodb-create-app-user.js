// Run once by the mongo image's entrypoint, on an empty data directory, as root:
// the backend connects as this user, which may only read and write its own database.
const database = process.env.MONGO_INITDB_DATABASE;
db.getSiblingDB(database).createUser({
  user: process.env.KYB_APP_USERNAME,
  pwd: process.env.KYB_APP_PASSWORD,
  roles: [{ role: "readWrite", db: database }],
});
