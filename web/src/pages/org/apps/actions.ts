// What every app action does after the API accepted it: refresh what shows the app.
import { AppService } from "../../../gen/skypanel/app/v1/app_pb";
import { invalidate } from "../../../lib/api";

export function refreshApp() {
  return invalidate(
    AppService.method.getApp,
    AppService.method.listApps,
    AppService.method.listDeployments,
    AppService.method.listReleases,
    AppService.method.listReplicas,
  );
}
