// aedes 1.x on 127.0.0.1:PORT (argv[2]). 1.x builds a broker with the async
// Aedes.createBroker(); the old aedes() factory is deprecated.
const net = require('net')
const { Aedes } = require('aedes')

async function main () {
  const port = Number(process.argv[2])
  const broker = await Aedes.createBroker()
  const server = net.createServer(broker.handle)
  server.on('error', (e) => { console.error(e); process.exit(1) })
  server.listen(port, '127.0.0.1', () => console.log(`aedes listening on 127.0.0.1:${port}`))
  const stop = () => server.close(() => broker.close(() => process.exit(0)))
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}
main().catch((e) => { console.error(e); process.exit(1) })
