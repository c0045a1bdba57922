// Initiate the replica set rs0 once every member answers; if it is initiated already,
// change nothing. Run by the mongodb-replica-set-init Job with `mongosh --nodb`.
const MEMBERS = ["mongodb-0.mongodb:27017", "mongodb-1.mongodb:27017", "mongodb-2.mongodb:27017"];
const ATTEMPTS = 150;
const credentials =
  `${encodeURIComponent(process.env.MONGO_USERNAME)}:${encodeURIComponent(process.env.MONGO_PASSWORD)}`;

function adminDatabase(host) {
  for (let attempt = 1; ; attempt++) {
    try {
      const database = connect(`mongodb://${credentials}@${host}/admin?directConnection=true`);
      database.runCommand({ ping: 1 });
      return database;
    } catch (error) {
      if (attempt === ATTEMPTS) throw error;
      print(`waiting for ${host}: ${error.message}`);
      sleep(2000);
    }
  }
}

const admin = MEMBERS.map(adminDatabase)[0];
try {
  const status = admin.runCommand({ replSetGetStatus: 1 });
  print(`replica set ${status.set} is initiated already`);
} catch (error) {
  if (error.codeName !== "NotYetInitialized") throw error;
  const members = MEMBERS.map((host, index) => ({ _id: index, host }));
  printjson(admin.runCommand({ replSetInitiate: { _id: "rs0", members } }));
}
